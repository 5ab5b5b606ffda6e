package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The status page: GET /ui/ on the admin endpoints, plain HTML and one
// script (ui/), embedded in the binary, no build step. The page shows the
// plugins, the connected clients, the recent denials and the reload
// history, fetched from the admin API every few seconds. It is read-only:
// it kicks nobody and reloads nothing.
//
// How a browser gets in. The HTTP endpoint wants "Authorization: Bearer
// <token>", which a browser does not send when it opens a page. So:
//
//   - /ui/login takes the token once, from a form (POST, field "token") or
//     from the query string (GET /ui/login?token=..., for scripts and
//     headless browsers), and answers with a redirect to /ui/ that sets
//     the cookie "moat_admin". The token itself is not the cookie: the
//     cookie holds HMAC-SHA256(token, "moat admin ui"), so that it reveals
//     nothing of the token and stops working when the token changes. It is
//     HttpOnly, SameSite=Strict, and lasts until the browser closes.
//   - The cookie admits GET and HEAD requests only. Everything that
//     changes something (reload, kick, session delete) still needs the
//     bearer header, so a page of another site that makes the browser
//     send a request with the cookie (cross-site request forgery) cannot
//     act, and SameSite keeps the cookie off such requests anyway.
//   - Without the cookie, /ui/ answers 401 with the login form, which
//     holds no data.
//
// On the Unix socket the peer's credentials admit the request as for any
// other route; no cookie is involved.

//go:embed ui
var uiFiles embed.FS

// uiCookieName is the status page's session cookie.
const uiCookieName = "moat_admin"

// uiCookieValue derives the cookie value from the token.
func uiCookieValue(token []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write([]byte("moat admin ui"))
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

func (a *Admin) uiRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(uiFiles, "ui") // cannot fail: ui is embedded
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", noStore(http.FileServerFS(static))))
	mux.HandleFunc("GET /ui/login", a.uiLogin)
	mux.HandleFunc("POST /ui/login", a.uiLogin)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
}

func noStore(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// uiAdmit serves the requests of the HTTP endpoint that come without a
// valid bearer token but are the status page's: a GET or HEAD with the
// session cookie goes to next; the login route checks the token it is
// given; any other GET under /ui/ gets the login form. It reports whether
// it answered; if not, the caller refuses the request.
func (a *Admin) uiAdmit(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	if a.uiCookie == nil {
		return false
	}
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	if c, err := r.Cookie(uiCookieName); err == nil && get &&
		subtle.ConstantTimeCompare([]byte(c.Value), a.uiCookie) == 1 {
		next.ServeHTTP(w, r)
		return true
	}
	if r.URL.Path == "/ui/login" {
		a.uiLogin(w, r)
		return true
	}
	if get && (r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/")) {
		uiLoginForm(w, http.StatusUnauthorized, "")
		return true
	}
	return false
}

// uiLogin checks the token of a login and sets the cookie. On the Unix
// socket there is nothing to check: the peer was admitted already.
func (a *Admin) uiLogin(w http.ResponseWriter, r *http.Request) {
	if a.uiCookie == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "moat: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	given := r.FormValue("token") // the query for GET, the form for POST
	if given == "" {
		uiLoginForm(w, http.StatusUnauthorized, "")
		return
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(given)), a.token) != 1 {
		auditAdmin(a.log, "status page login", true, "err", "bad token", "by", who(r))
		uiLoginForm(w, http.StatusUnauthorized, "That is not the token of [admin] token_file.")
		return
	}
	auditAdmin(a.log, "status page login", false, "by", who(r))
	http.SetCookie(w, &http.Cookie{
		Name: uiCookieName, Value: string(a.uiCookie), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>moat: sign in</title>
<link rel="stylesheet" href="/ui/style.css"></head>
<body><h1>moat</h1>
<p>The status page needs the admin token (the file of <code>[admin] token_file</code>).</p>
{{if .}}<p class="error">{{.}}</p>{{end}}
<form method="post" action="/ui/login">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Sign in</button>
</form></body></html>
`))

func uiLoginForm(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	_ = loginPage.Execute(w, msg)
}
