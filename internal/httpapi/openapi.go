package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPI describes this API (OpenAPI 3.1) so departments' systems can
// generate clients.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
