package tocsin

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class. Clients switch on it, so
// the values never change once published; each maps to one HTTP status in
// the API adapter.
type Code string

const (
	CodeInvalid          Code = "invalid_request"         // malformed request
	CodeUnauthorized     Code = "unauthorized"            // missing, bad or expired credentials
	CodeForbidden        Code = "forbidden"               // role or jurisdiction does not allow it
	CodeNotFound         Code = "not_found"               // no such resource
	CodeConflict         Code = "conflict"                // not allowed in the resource's current status
	CodeTooLarge         Code = "too_large"               // request body over the limit
	CodeUnsupportedMedia Code = "unsupported_media_type"  // body in a format we do not read
	CodeValidation       Code = "validation_failed"       // a field breaks a rule
	CodeTooLate          Code = "too_late"                // send time before the earliest permitted date
	CodeUnknownRegion    Code = "unknown_region"          // scope names a code not in GB/T 2260
	CodeReasonRequired   Code = "reason_required"         // a rejection, withdrawal or cancellation without a reason
	CodeNotImmediate     Code = "emergency_not_immediate" // an emergency asked to go out later: file an ordinary broadcast
	CodeCalendarMissing  Code = "calendar_missing"        // no working-day calendar for a year we need
	CodeIdempotencyReuse Code = "idempotency_key_reused"  // same key, different filing
	CodeRateLimited      Code = "rate_limited"            // too many attempts
	CodeUnavailable      Code = "unavailable"             // a dependency is down; retry later
	CodeInternal         Code = "internal"                // a bug or an I/O failure
)

// Error is the error type of the domain. Op names the operation that failed
// (for logs), Message is safe to show to the caller, Details are extra
// fields the caller can act on (for example "earliest_send_date"), and Err is
// the underlying cause, if any.
type Error struct {
	Code    Code
	Message string
	Op      string
	Details map[string]any
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// With returns a copy of e carrying one more detail field.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

// Errorf builds an *Error with a formatted, caller-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err: the domain message of
// an *Error, and a generic text for anything else, whose details may leak
// internals.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// ErrorDetails returns the detail fields of the first *Error in err's chain.
func ErrorDetails(err error) map[string]any {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}

// IsCode reports whether err carries code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }
