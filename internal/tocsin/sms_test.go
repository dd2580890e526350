package tocsin_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/tocsin-dev/tocsin/internal/region"
	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func TestMeasureSMS(t *testing.T) {
	tests := []struct {
		name string
		text string
		want tocsin.SMSInfo
	}{
		{"empty", "", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 0, Segments: 0}},
		{"one ascii", "a", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 1, Segments: 1}},
		{"ascii 160 fits one", strings.Repeat("a", 160), tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 160, Segments: 1}},
		{"ascii 161 needs two", strings.Repeat("a", 161), tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 161, Segments: 2}},
		{"ascii 306 is two parts of 153", strings.Repeat("a", 306), tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 306, Segments: 2}},
		{"ascii 307 is three parts", strings.Repeat("a", 307), tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 307, Segments: 3}},
		{"gsm basic non-ascii", "£¥èÉÄÖÑÜ§¿àΔΩ", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 13, Segments: 1}},
		{"newline and cr are basic", "a\nb\rc", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 5, Segments: 1}},
		{"extension brace costs two", "{", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 2, Segments: 1}},
		{"every extension char costs two", "^{}\\[~]|€", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 18, Segments: 1}},
		{"159 ascii plus brace overflows", strings.Repeat("a", 159) + "{", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 161, Segments: 2}},
		{"158 ascii plus brace fits", strings.Repeat("a", 158) + "{", tocsin.SMSInfo{Encoding: tocsin.GSM7, Characters: 160, Segments: 1}},
		{"chinese 70 fits one", strings.Repeat("台", 70), tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 70, Segments: 1}},
		{"chinese 71 needs two", strings.Repeat("台", 71), tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 71, Segments: 2}},
		{"chinese 134 is two parts of 67", strings.Repeat("风", 134), tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 134, Segments: 2}},
		{"chinese 135 is three parts", strings.Repeat("风", 135), tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 135, Segments: 3}},
		{"chinese punctuation", "台风预警！", tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 5, Segments: 1}},
		{"emoji is a surrogate pair", "😀", tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 2, Segments: 1}},
		{"35 emoji fill one", strings.Repeat("🌀", 35), tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 70, Segments: 1}},
		{"36 emoji need two", strings.Repeat("🌀", 36), tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 72, Segments: 2}},
		{"mixed ascii and chinese is ucs2", "Typhoon 台风 red", tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 14, Segments: 1}},
		{"one chinese char turns 100 ascii into ucs2", strings.Repeat("a", 100) + "风", tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 101, Segments: 2}},
		{"extension char in ucs2 counts one", "{台}", tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 3, Segments: 1}},
		{"accented char outside gsm is ucs2", "café ç", tocsin.SMSInfo{Encoding: tocsin.UCS2, Characters: 6, Segments: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tocsin.MeasureSMS(tt.text); got != tt.want {
				t.Errorf("MeasureSMS(%q) = %+v, want %+v", abbrev(tt.text), got, tt.want)
			}
		})
	}
}

func abbrev(s string) string {
	if r := []rune(s); len(r) > 20 {
		return string(r[:20]) + "…"
	}
	return s
}

func TestProviderCoverage(t *testing.T) {
	regions := region.Default()
	tests := []struct {
		name     string
		provider []string
		scope    []string
		want     []string
	}{
		{"province provider, prefecture scope", []string{"440000"}, []string{"440100"}, []string{"440100"}},
		{"province provider, county scope", []string{"440000"}, []string{"440106"}, []string{"440106"}},
		{"province provider, same province scope", []string{"440000"}, []string{"440000"}, []string{"440000"}},
		{"prefecture provider, province scope", []string{"440100"}, []string{"440000"}, []string{"440100"}},
		{"two prefectures, province scope", []string{"440100", "440300"}, []string{"440000"}, []string{"440100", "440300"}},
		{"disjoint provinces", []string{"450000"}, []string{"440100"}, nil},
		{"disjoint prefectures in one province", []string{"440300"}, []string{"440100"}, nil},
		{"two provinces, multi-province scope", []string{"440000", "450000"}, []string{"440000", "450000"}, []string{"440000", "450000"}},
		{"one of two scope provinces", []string{"440000"}, []string{"440000", "450000"}, []string{"440000"}},
		{"scope codes inside one region are not merged", []string{"440000"}, []string{"440100", "440106"}, []string{"440100", "440106"}},
		{"duplicate coverage listed once", []string{"440000", "440100"}, []string{"440100"}, []string{"440100"}},
		{"empty scope", []string{"440000"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &tocsin.Provider{ID: "p", Regions: tt.provider}
			if got := p.Coverage(regions, tt.scope); !slices.Equal(got, tt.want) {
				t.Errorf("Coverage(provider %v, scope %v) = %v, want %v", tt.provider, tt.scope, got, tt.want)
			}
		})
	}
}
