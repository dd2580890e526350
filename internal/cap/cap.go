// Package cap speaks OASIS Common Alerting Protocol 1.2 for Tocsin: it writes
// a broadcast as a CAP alert (Encode), lists released public alerts as an
// Atom feed that links to their CAP (AtomFeed), and reads a CAP alert from
// an existing warning system as a filing (Parse, Decode).
//
// The mapping in both directions is documented in the README's CAP section.
// Reading is hostile-input safe: documents over MaxDocumentBytes, deeper
// than MaxDepth, or carrying a DOCTYPE or entity declaration are refused
// before any of their content is interpreted, and every refusal is a
// *tocsin.Error with a code the API maps to an HTTP status.
//
// The package depends on the domain (internal/tocsin) and the standard
// library only; region names come in as a function so that it does not
// depend on the division table either.
package cap

import (
	"encoding/xml"
	"time"
)

// Namespace is the XML namespace of CAP 1.2 alerts.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// MediaType is the media type CAP alerts are served and accepted as.
const MediaType = "application/cap+xml"

// Language is the language of the info block Tocsin writes.
const Language = "zh-CN"

// GeocodeName is the valueName of the geocodes that carry GB/T 2260
// administrative division codes.
const GeocodeName = "GB/T 2260"

// Parameters Tocsin adds to an info block so that a Tocsin alert read back
// by Tocsin keeps exactly what the coarser CAP vocabulary loses.
const (
	ParamSenderCode    = "tocsin:sender_code"    // Article 10 sender number or code
	ParamEmergencyType = "tocsin:emergency_type" // natural_disaster, accident, ...
	ParamWarningLevel  = "tocsin:warning_level"  // red, orange, yellow, blue
)

// dateTimeLayout is CAP's dateTime: no fractional seconds and a numeric
// offset, never "Z" (CAP 1.2, section 3.3.2).
const dateTimeLayout = "2006-01-02T15:04:05-07:00"

// shanghai is China Standard Time; every time Tocsin writes is in it.
var shanghai = time.FixedZone("Asia/Shanghai", 8*60*60)

// formatTime writes t as a CAP dateTime in China Standard Time.
func formatTime(t time.Time) string { return t.In(shanghai).Format(dateTimeLayout) }

// alert is the CAP 1.2 alert element, in the schema's element order.
type alert struct {
	XMLName     xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier  string   `xml:"identifier"`
	Sender      string   `xml:"sender"`
	Sent        string   `xml:"sent"`
	Status      string   `xml:"status"`
	MsgType     string   `xml:"msgType"`
	Source      string   `xml:"source,omitempty"`
	Scope       string   `xml:"scope"`
	Restriction string   `xml:"restriction,omitempty"`
	Addresses   string   `xml:"addresses,omitempty"`
	Code        []string `xml:"code,omitempty"`
	Note        string   `xml:"note,omitempty"`
	References  string   `xml:"references,omitempty"`
	Incidents   string   `xml:"incidents,omitempty"`
	Info        []info   `xml:"info"`
}

type info struct {
	Language     string      `xml:"language,omitempty"`
	Category     []string    `xml:"category"`
	Event        string      `xml:"event"`
	ResponseType []string    `xml:"responseType,omitempty"`
	Urgency      string      `xml:"urgency"`
	Severity     string      `xml:"severity"`
	Certainty    string      `xml:"certainty"`
	Audience     string      `xml:"audience,omitempty"`
	EventCode    []valuePair `xml:"eventCode,omitempty"`
	Effective    string      `xml:"effective,omitempty"`
	Onset        string      `xml:"onset,omitempty"`
	Expires      string      `xml:"expires,omitempty"`
	SenderName   string      `xml:"senderName,omitempty"`
	Headline     string      `xml:"headline,omitempty"`
	Description  string      `xml:"description,omitempty"`
	Instruction  string      `xml:"instruction,omitempty"`
	Web          string      `xml:"web,omitempty"`
	Contact      string      `xml:"contact,omitempty"`
	Parameter    []valuePair `xml:"parameter,omitempty"`
	Area         []area      `xml:"area,omitempty"`
}

type valuePair struct {
	ValueName string `xml:"valueName"`
	Value     string `xml:"value"`
}

type area struct {
	AreaDesc string      `xml:"areaDesc"`
	Polygon  []string    `xml:"polygon,omitempty"`
	Circle   []string    `xml:"circle,omitempty"`
	Geocode  []valuePair `xml:"geocode,omitempty"`
}
