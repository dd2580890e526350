package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/tocsin-dev/tocsin/internal/tocsin"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v) // the client may be gone; nothing useful to do
}

// decodeJSON reads the request body into v, strictly: unknown fields and
// trailing data are errors, so a typo in a field name is caught rather than
// silently ignored. An empty body leaves v as it is when allowEmpty.
func decodeJSON(r *http.Request, v any, allowEmpty bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !jsonish(ct) {
		return tocsin.Errorf(tocsin.CodeUnsupportedMedia, "request body must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) && allowEmpty {
		return nil
	}
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			return tocsin.Errorf(tocsin.CodeInvalid, "request body has data after the JSON value")
		}
		return nil
	}
	return bodyError(err)
}

// jsonish reports whether a body of this media type is read as JSON. curl's
// -d sends application/x-www-form-urlencoded unless told otherwise, and
// scripts forget; reading that as JSON costs nothing, since the API is
// authorised by a bearer header that no cross-site form can send.
func jsonish(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "text/json", "text/plain", "application/x-www-form-urlencoded":
		return true
	}
	return strings.HasSuffix(mt, "+json")
}

// TimeExample is a time as the API reads and writes them (RFC 3339, Beijing
// time), for messages that say what a time looks like.
const TimeExample = "2026-12-01T09:00:00+08:00"

// bodyError classifies a failure to read a JSON body.
func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var badTime *time.ParseError
	switch {
	case errors.As(err, &tooBig):
		return tocsin.Errorf(tocsin.CodeTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		return tocsin.Errorf(tocsin.CodeInvalid, "request body is empty; a JSON object is required")
	case errors.As(err, &syntax):
		return tocsin.Errorf(tocsin.CodeInvalid, "request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return tocsin.Errorf(tocsin.CodeValidation, "field %s must be %s", field, jsonKind(typ.Type.Kind().String())).With("field", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return tocsin.Errorf(tocsin.CodeInvalid, "request body is truncated JSON")
	case errors.As(err, &badTime):
		// Go's error names its layout ("2006-01-02T15:04:05Z07:00"),
		// which reads as a riddle; say what a time looks like.
		return tocsin.Errorf(tocsin.CodeInvalid,
			"%q is not a time: write RFC 3339 with the date, the time and the UTC offset, for example %s", badTime.Value, TimeExample).
			With("reason", "time_format").With("expected", TimeExample)
	}
	// encoding/json reports unknown fields and bad time strings only as text.
	return &tocsin.Error{Code: tocsin.CodeInvalid, Message: fmt.Sprintf("request body: %s", trimJSONPrefix(err.Error()))}
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return "a " + k
}

func trimJSONPrefix(msg string) string {
	const p = "json: "
	if len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}
