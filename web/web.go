// Package web is the browser client, embedded into iopd: the join page with
// its device check and video grid, the staff's attendance dashboard, and the
// UI-free protocol module the pages are built on.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the client: / (landing), /join (the join link's page),
// /staff (the attendance dashboard, with a staff or therapist token in its
// fragment) and the scripts and styles under /js/ and /css/.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	fileServer := http.FileServer(http.FS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Permissions-Policy", "camera=(self), microphone=(self)")
		h.Set("Cache-Control", "no-cache")
		switch r.URL.Path {
		case "/join", "/join/":
			http.ServeFileFS(w, r, static, "join.html")
			return
		case "/staff", "/staff/":
			http.ServeFileFS(w, r, static, "staff.html")
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}
