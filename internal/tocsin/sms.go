package tocsin

import "unicode/utf16"

// Encoding is the character set an SMS is sent in.
type Encoding string

const (
	GSM7 Encoding = "GSM-7"
	UCS2 Encoding = "UCS-2"
)

// SMSInfo describes how a text travels as SMS: its encoding, its length in
// that encoding's units, and the number of messages it takes.
type SMSInfo struct {
	Encoding   Encoding `json:"encoding"`
	Characters int      `json:"characters"`
	Segments   int      `json:"segments"`
}

// Segment sizes of 3GPP TS 23.038/23.040: a single message holds 160 GSM-7
// septets or 70 UCS-2 units; a concatenated one loses room to its user data
// header and holds 153 or 67 per part.
const (
	gsm7Single = 160
	gsm7Part   = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// gsm7Basic and gsm7Extended are the GSM 03.38 default alphabet and its
// extension table; an extended character costs an escape plus itself.
const gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
const gsm7Extended = "^{}\\[~]|€\f"

var gsm7Cost = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsm7Basic {
		m[r] = 1
	}
	for _, r := range gsm7Extended {
		m[r] = 2
	}
	return m
}()

// MeasureSMS reports the encoding, length and segment count of text. Text
// that fits the GSM-7 alphabet is sent as GSM-7; anything else, Chinese
// included, as UCS-2, where characters outside the Basic Multilingual Plane
// take two units.
func MeasureSMS(text string) SMSInfo {
	septets, gsm := 0, true
	for _, r := range text {
		c, ok := gsm7Cost[r]
		if !ok {
			gsm = false
			break
		}
		septets += c
	}
	if gsm {
		return SMSInfo{Encoding: GSM7, Characters: septets, Segments: segments(septets, gsm7Single, gsm7Part)}
	}
	units := len(utf16.Encode([]rune(text)))
	return SMSInfo{Encoding: UCS2, Characters: units, Segments: segments(units, ucs2Single, ucs2Part)}
}

func segments(n, single, part int) int {
	switch {
	case n == 0:
		return 0
	case n <= single:
		return 1
	default:
		return (n + part - 1) / part
	}
}
