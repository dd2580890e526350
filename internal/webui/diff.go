package webui

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

// diffPart is a run of text a correction kept ("same"), removed ("del")
// or added ("ins").
type diffPart struct {
	Op   string
	Text string
}

// maxDiffCells bounds the table diffTokens fills (after the common start
// and end are set aside); beyond it the middle shows as replaced whole.
const maxDiffCells = 1 << 20

// diffText compares two texts by word for letters and digits and by
// character otherwise, so Chinese compares character by character and
// English word by word.
func diffText(a, b string) []diffPart { return diffTokens(tokenize(a), tokenize(b)) }

// tokenize cuts s into runs of letters and digits of a script that
// spaces its words (Latin and the like), runs of space, and single other
// characters (Han, punctuation).
func tokenize(s string) []string {
	var out []string
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		word := func(r rune) bool {
			return (unicode.IsLetter(r) || unicode.IsDigit(r)) && !unicode.Is(unicode.Han, r) && r < 0x3000
		}
		end := n
		switch {
		case word(r):
			for end < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[end:])
				if !word(r2) {
					break
				}
				end += n2
			}
		case unicode.IsSpace(r):
			for end < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[end:])
				if !unicode.IsSpace(r2) {
					break
				}
				end += n2
			}
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// diffTokens returns the longest-common-subsequence diff of a and b, with
// neighbouring parts of the same kind joined.
func diffTokens(a, b []string) []diffPart {
	var out []diffPart
	add := func(op, text string) {
		if text == "" {
			return
		}
		if n := len(out); n > 0 && out[n-1].Op == op {
			out[n-1].Text += text
			return
		}
		out = append(out, diffPart{Op: op, Text: text})
	}
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	add("same", strings.Join(a[:pre], ""))
	x, y := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if len(x)*len(y) > maxDiffCells {
		add("del", strings.Join(x, ""))
		add("ins", strings.Join(y, ""))
	} else {
		// lcs[i][j] is the length of the longest common subsequence of
		// x[i:] and y[j:].
		w := len(y) + 1
		lcs := make([]int32, (len(x)+1)*w)
		for i := len(x) - 1; i >= 0; i-- {
			for j := len(y) - 1; j >= 0; j-- {
				if x[i] == y[j] {
					lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
				} else {
					lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(x) || j < len(y) {
			switch {
			case i < len(x) && j < len(y) && x[i] == y[j]:
				add("same", x[i])
				i, j = i+1, j+1
			case j < len(y) && (i == len(x) || lcs[i*w+j+1] >= lcs[(i+1)*w+j]):
				add("ins", y[j])
				j++
			default:
				add("del", x[i])
				i++
			}
		}
	}
	add("same", strings.Join(a[len(a)-suf:], ""))
	return out
}

// compareRow is one field of a correction next to the original's.
type compareRow struct {
	Label    string
	Changed  bool
	Old, New []diffPart
}

// compare lists what a correction changes from the original: the
// internal title, the public headline, the content, the scope, the send
// window, the emergency and whether it is an exercise.
func (s *Server) compare(l localizer, original, correction *tocsin.Broadcast) []compareRow {
	row := func(key string, parts []diffPart) compareRow {
		r := compareRow{Label: l.S(key)}
		for _, p := range parts {
			if p.Op != "del" {
				r.New = append(r.New, p)
			}
			if p.Op != "ins" {
				r.Old = append(r.Old, p)
			}
			r.Changed = r.Changed || p.Op != "same"
		}
		return r
	}
	whole := func(a, b string) []diffPart {
		if a == b {
			return []diffPart{{Op: "same", Text: a}}
		}
		return []diffPart{{Op: "del", Text: a}, {Op: "ins", Text: b}}
	}
	scope := func(b *tocsin.Broadcast) []string {
		var out []string
		for i, r := range s.regionViews(b.Scope) {
			if i > 0 {
				out = append(out, l.S("list.sep"))
			}
			out = append(out, r.Name)
		}
		return out
	}
	emergency := func(b *tocsin.Broadcast) string {
		if e := b.Emergency; e != nil {
			return l.Code("level", e.Level) + " · " + l.Code("etype", e.Type) + " · " + e.Event
		}
		return l.S("compare.ordinary")
	}
	mode := func(b *tocsin.Broadcast) string {
		if b.Exercise {
			return l.S("mode.exercise")
		}
		return l.S("mode.live")
	}
	return []compareRow{
		row("field.title", diffText(original.Title, correction.Title)),
		row("field.headline", diffText(original.PublicHeadline(), correction.PublicHeadline())),
		row("field.content", diffText(original.Content, correction.Content)),
		row("col.scope", diffTokens(scope(original), scope(correction))),
		row("col.send_at", whole(formatTime(original.SendAt, TimeLayout), formatTime(correction.SendAt, TimeLayout))),
		row("detail.send_until", whole(formatTime(original.SendUntil, TimeLayout), formatTime(correction.SendUntil, TimeLayout))),
		row("compare.emergency", whole(emergency(original), emergency(correction))),
		row("compare.mode", whole(mode(original), mode(correction))),
	}
}
