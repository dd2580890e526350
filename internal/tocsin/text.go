package tocsin

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the other free-text fields, in characters (Unicode code
// points). A filing's own limits are in rules.go; the README's "Limits on
// input" lists them all, and openapi.json carries each as maxLength.
const (
	MaxJustificationChars = 2000
	MaxNoteChars          = 2000 // a regulator's note on a post-hoc report
	MaxNameChars          = 200  // organisation and provider names
)

// textKind says which characters a free-text field accepts beyond the
// printable ones.
type textKind int

const (
	// singleLine is a name, a title, an event: no control character at
	// all, not even a newline or a tab.
	singleLine textKind = iota
	// smsText is a message's content: newlines, which a handset shows,
	// and nothing else below U+0020 (a tab is not in the GSM alphabet and
	// handsets show it as they please).
	smsText
	// multiLine is a reason, a note, a report: newlines and tabs.
	multiLine
)

// cleanText normalises a free-text value (trims white space at either end
// and reads CRLF, as browsers submit a textarea, as LF) and checks it: valid
// UTF-8, at most max characters, and none of the characters that hide or
// disguise what a reader sees (see forbidden). It does not require the
// value: callers check Blank where one is needed.
func cleanText(field, s string, kind textKind, max int) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n > max {
		return s, invalid(field, "%s is %d characters long; at most %d are allowed", field, n, max).
			With("max_length", max)
	}
	if !utf8.ValidString(s) {
		return s, invalid(field, "%s is not valid UTF-8", field)
	}
	if kind != singleLine {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	pos := 0
	for _, r := range s {
		pos++
		if why := forbidden(r, kind); why != "" {
			return s, invalid(field, "%s contains %s (U+%04X) at character %d; remove it and send the text again",
				field, why, r, pos).With("character", fmt.Sprintf("U+%04X", r))
		}
	}
	return s, nil
}

// forbidden says why r may not appear in a field of this kind, or "" if it
// may. Refused everywhere: NUL and the other C0 controls (but for the line
// breaks the kind allows), DEL, the C1 controls, and the bidirectional
// embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which
// make text display in another order than it is stored and read.
func forbidden(r rune, kind textKind) string {
	switch {
	case r == '\n' && kind != singleLine:
		return ""
	case r == '\t' && kind == multiLine:
		return ""
	case r == 0:
		return "a NUL character"
	case r == '\n' || r == '\r':
		if kind == singleLine {
			return "a line break, which this one-line field cannot hold"
		}
		return "a lone carriage return"
	case r == '\t':
		return "a tab"
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return "a control character"
	case r >= 0x202a && r <= 0x202e:
		return "a bidirectional embedding or override"
	case r >= 0x2066 && r <= 0x2069:
		return "a bidirectional isolate"
	}
	return ""
}

// invisible reports whether r shows nothing on its own: the zero-width
// space, joiners and word joiner, the invisible operators, the byte-order
// mark, soft hyphen, directional marks and the Hangul fillers.
func invisible(r rune) bool {
	switch r {
	case 0x00ad, 0x034f, 0x061c, 0x115f, 0x1160, 0x17b4, 0x17b5, 0x180e,
		0x200b, 0x200c, 0x200d, 0x200e, 0x200f, 0x3164, 0xfeff, 0xffa0:
		return true
	}
	return r >= 0x2060 && r <= 0x2064
}

// Blank reports whether s shows nothing: it holds only white space and
// invisible characters (a zero-width space is no content).
func Blank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) && !invisible(r) {
			return false
		}
	}
	return true
}
