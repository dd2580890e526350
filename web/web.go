// Package web holds the web UI's files, embedded in the binary: the
// html/template pages under templates/, the stylesheet and script under
// static/, and the message catalogs (one JSON object per language) under
// i18n/. internal/webui parses them once at start and fails if any is
// broken.
package web

import (
	"embed"
	"io/fs"
)

//go:embed templates static i18n
var files embed.FS

// FS returns the embedded files: templates/*.html, static/* and
// i18n/<lang>.json.
func FS() fs.FS { return files }
