package accounts_test

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/deskrelay/deskrelay/internal/accounts"
	"github.com/deskrelay/deskrelay/internal/budget"
)

// TestAccountShowsNoSecret: String, every fmt verb and the zerolog object
// show an account's fields but none of its secrets.
func TestAccountShowsNoSecret(t *testing.T) {
	f, _, err := load(t, goodFile, goodSecrets)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for _, s := range goodSecrets {
		secrets = append(secrets, strings.TrimSpace(s))
	}
	for _, a := range f.Accounts {
		var log bytes.Buffer
		logger := zerolog.New(&log)
		logger.Info().EmbedObject(a).Msg("account")
		logger.Info().Object("a", a).Msg("account")
		shown := []string{a.String(), fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), fmt.Sprintf("%v %+v", &a, &a), log.String(), a.Fingerprint()}
		for _, text := range shown {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Fatalf("%s shows a secret: %s", a.Name, text)
				}
			}
		}
		if !strings.Contains(log.String(), `"account":"`+a.Name+`"`) || !strings.HasPrefix(a.String(), a.Name+" (") {
			t.Fatalf("the account's name is missing: %s / %s", log.String(), a.String())
		}
	}
	want := "acme (https://acme.zendesk.com, oauth_refresh, rate 400, updates 50%, webhook 01HXYZ)"
	if got := f.Accounts[0].String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// TestFingerprintCoversEveryField changes each field of an account in turn
// (by reflection, so that a field added later is covered too) and expects
// a new fingerprint each time.
func TestFingerprintCoversEveryField(t *testing.T) {
	base := accounts.Account{Name: "acme", Subdomain: "acme", OAuthToken: "tok", RateLimit: budget.Share(50), UpdateRateLimit: budget.Share(70)}
	seen := map[string]string{base.Fingerprint(): "base"}
	if again := base; again.Fingerprint() != base.Fingerprint() {
		t.Fatal("the fingerprint of an equal account differs")
	}
	typ := reflect.TypeFor[accounts.Account]()
	for i := range typ.NumField() {
		a := base
		v := reflect.ValueOf(&a).Elem().Field(i)
		switch v.Interface().(type) {
		case string:
			v.SetString(v.String() + "-changed")
		case int64:
			v.SetInt(v.Int() + 7)
		case budget.Rate:
			v.Set(reflect.ValueOf(budget.PerMinute(123)))
		default:
			t.Fatalf("field %s: a type the test does not know; teach it", typ.Field(i).Name)
		}
		fp := a.Fingerprint()
		if prev, dup := seen[fp]; dup {
			t.Fatalf("changing %s leaves the fingerprint of %s", typ.Field(i).Name, prev)
		}
		seen[fp] = typ.Field(i).Name
	}
	// Field boundaries count: moving a character between fields changes it.
	a, b := accounts.Account{Name: "ab", Subdomain: "c"}, accounts.Account{Name: "a", Subdomain: "bc"}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("the fingerprint does not separate fields")
	}
}

func TestDiff(t *testing.T) {
	prev, _, err := load(t, goodFile, goodSecrets)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"new_token": "rotated-token\n"}
	for k, v := range goodSecrets {
		secrets[k] = v
	}
	// globex's token file changes (a secret only), initech goes, umbrella
	// comes, acme stays as it was.
	next, _, err := load(t, strings.Replace(strings.Split(goodFile, "  - name: initech")[0], "globex_token", "new_token", 1)+
		"  - name: umbrella\n    subdomain: umbrella\n    oauth_token_file: new_token\n", secrets)
	if err != nil {
		t.Fatal(err)
	}
	added, changed, removed := accounts.Diff(prev, next)
	if !slices.Equal(added, []string{"umbrella"}) || !slices.Equal(changed, []string{"globex"}) || !slices.Equal(removed, []string{"initech"}) {
		t.Fatalf("Diff = added %v, changed %v, removed %v", added, changed, removed)
	}
	if a, c, r := accounts.Diff(prev, prev); a != nil || c != nil || r != nil {
		t.Fatalf("Diff of a file with itself = %v %v %v", a, c, r)
	}
	if a, c, r := accounts.Diff(nil, prev); !slices.Equal(a, prev.Names()) || c != nil || r != nil {
		t.Fatalf("Diff from nothing = %v %v %v", a, c, r)
	}
}
