// Package browsercheck drives a real Chromium through chromedriver's W3C
// WebDriver HTTP API (plain net/http, no client library), for the browser
// check of the operators' UI (browser_test.go, `make browser-check`).
//
// It is test tooling: the deskrelay binary never imports it.
package browsercheck

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// elementKey is the W3C name of an element reference in JSON.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// Driver is one chromedriver process and one browser session in it.
type Driver struct {
	base    string // chromedriver's URL
	session string
	cmd     *exec.Cmd
	http    *http.Client
}

// Start runs chromedriver (path) on a free loopback port and opens a
// headless Chromium session (browser: the chromium binary).
func Start(ctx context.Context, chromedriver, browser string) (*Driver, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, chromedriver, "--port="+strconv.Itoa(port)) //nolint:gosec // the check runs the chromedriver it found on PATH
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", chromedriver, err)
	}
	d := &Driver{base: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, http: &http.Client{Timeout: 60 * time.Second}}
	if err := d.waitReady(ctx); err != nil {
		d.Close()
		return nil, err
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": browser,
			"args":   []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"},
		},
	}}}
	var out struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.do(ctx, http.MethodPost, "/session", caps, &out); err != nil {
		d.Close()
		return nil, fmt.Errorf("new session: %w", err)
	}
	d.session = out.SessionID
	return d, nil
}

func freePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (d *Driver) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := d.do(ctx, http.MethodGet, "/status", nil, &st); err == nil && st.Ready {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("chromedriver did not become ready within 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close ends the session and chromedriver.
func (d *Driver) Close() {
	if d.session != "" {
		_ = d.do(context.Background(), http.MethodDelete, "/session/"+d.session, nil, nil)
	}
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
	}
}

// do sends one WebDriver command and decodes its "value" into out.
func (d *Driver) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: %d, undecodable answer: %w", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(env.Value, &e)
		return fmt.Errorf("%s %s: %d %s: %.600s", method, path, resp.StatusCode, e.Error, e.Message)
	}
	if out != nil {
		return json.Unmarshal(env.Value, out)
	}
	return nil
}

func (d *Driver) sess(path string) string { return "/session/" + d.session + path }

// CDP runs a Chrome DevTools Protocol command (chromedriver's extension).
func (d *Driver) CDP(ctx context.Context, cmd string, params map[string]any) error {
	return d.do(ctx, http.MethodPost, d.sess("/goog/cdp/execute"), map[string]any{"cmd": cmd, "params": params}, nil)
}

// BasicAuth makes every request of the browser carry these credentials.
func (d *Driver) BasicAuth(ctx context.Context, user, password string) error {
	if err := d.CDP(ctx, "Network.enable", map[string]any{}); err != nil {
		return err
	}
	token := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	return d.CDP(ctx, "Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{"Authorization": "Basic " + token}})
}

// Navigate opens url.
func (d *Driver) Navigate(ctx context.Context, url string) error {
	return d.do(ctx, http.MethodPost, d.sess("/url"), map[string]string{"url": url}, nil)
}

// Text is the page's visible text.
func (d *Driver) Text(ctx context.Context) (string, error) {
	var s string
	err := d.do(ctx, http.MethodPost, d.sess("/execute/sync"), map[string]any{"script": "return document.body ? document.body.innerText : ''", "args": []any{}}, &s)
	return s, err
}

// Find returns the first element matching the XPath expression.
func (d *Driver) Find(ctx context.Context, xpath string) (string, error) {
	var el map[string]string
	if err := d.do(ctx, http.MethodPost, d.sess("/element"), map[string]string{"using": "xpath", "value": xpath}, &el); err != nil {
		return "", err
	}
	if id := el[elementKey]; id != "" {
		return id, nil
	}
	return "", fmt.Errorf("no element reference in %v", el)
}

// Hover moves the pointer onto the element's centre.
func (d *Driver) Hover(ctx context.Context, el string) error {
	actions := map[string]any{"actions": []any{map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]string{"pointerType": "mouse"},
		"actions": []any{map[string]any{"type": "pointerMove", "duration": 0, "origin": map[string]string{elementKey: el}, "x": 0, "y": 0}},
	}}}
	return d.do(ctx, http.MethodPost, d.sess("/actions"), actions, nil)
}

// Click clicks the element as a user would.
func (d *Driver) Click(ctx context.Context, el string) error {
	return d.do(ctx, http.MethodPost, d.sess("/element/"+el+"/click"), map[string]any{}, nil)
}

// Screenshot writes a PNG of the viewport to path.
func (d *Driver) Screenshot(ctx context.Context, path string) error {
	var b64 string
	if err := d.do(ctx, http.MethodGet, d.sess("/screenshot"), nil, &b64); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o600)
}
