package httpx

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Login is a basic-auth user and password. The zero Login matches nobody.
type Login struct {
	User, Password string
}

func (l Login) set() bool { return l.User != "" && l.Password != "" }

// matches compares in constant time; both fields are compared every time.
func (l Login) matches(user, password string) bool {
	userOK, passOK := Equal(user, l.User), Equal(password, l.Password)
	return l.set() && userOK && passOK
}

type viewerKey struct{}

// readOnly reports whether the method only reads.
func readOnly(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// RequireLogin wraps next so that it runs for admin on every method, and for
// viewer (when set) on GET and HEAD only: a viewer's write is answered 403
// read_only. Anybody else gets 401. ByLogin tells the two apart further in.
func RequireLogin(admin, viewer Login, realm string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		isAdmin, isViewer := admin.matches(u, p), viewer.matches(u, p)
		switch {
		case ok && isAdmin:
			next.ServeHTTP(w, r)
		case ok && isViewer && readOnly(r.Method):
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, true)))
		case ok && isViewer:
			WriteError(w, http.StatusForbidden, "read_only", "this login may only read (GET, HEAD)")
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong credentials")
		}
	})
}

// ByLogin sends the viewer's requests (see RequireLogin) to forViewer and
// everybody else's to forAdmin.
func ByLogin(forAdmin, forViewer http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v, _ := r.Context().Value(viewerKey{}).(bool); v {
			forViewer.ServeHTTP(w, r)
			return
		}
		forAdmin.ServeHTTP(w, r)
	})
}

// NotFramable sets the headers that keep another site from framing the
// answer (clickjacking) or sniffing it as another content type.
func NotFramable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// SameSiteWrites refuses (403 cross_site) a request that changes state
// (anything but GET, HEAD and OPTIONS) when the browser says it comes from
// another site: its Origin (or, without one, its Referer) is neither the
// request's own Host nor the origin of publicURL (the address behind a TLS
// proxy; may be empty), or its Sec-Fetch-Site is cross-site or same-site.
// A request with none of these headers (curl, scripts) is not a browser's
// and passes: basic auth alone guards it.
func SameSiteWrites(publicURL string, next http.Handler) http.Handler {
	public := ""
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		public = origin(u.Scheme, u.Host)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readOnly(r.Method) || r.Method == http.MethodOptions || sameSite(r, public) {
			next.ServeHTTP(w, r)
			return
		}
		WriteError(w, http.StatusForbidden, "cross_site", "a state-changing request from another site is refused; use the page this server serves")
	})
}

// sameSite applies SameSiteWrites' rule to one request.
func sameSite(r *http.Request, public string) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (a sandboxed or opaque origin) and garbage
	}
	o := origin(u.Scheme, u.Host)
	return o == public || o == origin(u.Scheme, r.Host)
}

// origin is scheme://host[:port] in lower case, without the scheme's
// default port, so that equal origins compare equal.
func origin(scheme, host string) string {
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	return scheme + "://" + host
}
