// Package console owns Trail's web console: the static files of a
// browser application for privacy officers, auditors, security analysts
// and operators, embedded in the binary, and the HTTP handler that serves
// them under /console/.
//
// The console has no privileges of its own and no server-side logic: it is
// a client of the REST API (/api/v1/...), and every call it makes carries
// the API key the user signed in with, so authorization and the access
// audit are the API's. The key lives in the browser's session storage
// only. Proofs and signatures are verified in the browser (WebCrypto), so
// an auditor need not trust the server that answers them.
//
// The files are plain HTML, CSS and JavaScript modules, with no build
// step and no third-party code: there is nothing to fetch from elsewhere,
// and the Content-Security-Policy below forbids it.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// Path is where the console is mounted.
const Path = "/console/"

//go:embed static
var static embed.FS

// securityHeaders keep the console's pages from loading or running
// anything that is not one of its own files, from being framed, and from
// leaking the page address to anyone: the API key is only as safe as the
// page that holds it.
func securityHeaders() map[string]string {
	return map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
			"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		// The files change with the binary; a browser revalidates rather
		// than running a stale script against a newer API.
		"Cache-Control": "no-cache",
	}
}

// Handler serves the console's files under [Path]. A request for the
// path without its trailing slash is redirected to it.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// static is embedded by the compiler; its absence is a build bug.
		panic("console: embedded files missing: " + err.Error())
	}
	files := http.StripPrefix(Path, http.FileServerFS(sub))
	headers := securityHeaders()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "console: method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == Path[:len(Path)-1] {
			http.Redirect(w, r, Path, http.StatusMovedPermanently)
			return
		}
		// The console is its index page and the files it loads; there is
		// no directory to browse.
		if r.URL.Path != Path && strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		files.ServeHTTP(w, r)
	})
}
