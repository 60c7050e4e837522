package zendesk

import (
	"os"
	"strings"
	"testing"
)

// TestFamiliesAreDocumented: every family of the table has its row in
// docs/zendesk.md, so the page and the code do not drift apart.
func TestFamiliesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/zendesk.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Families() {
		if !strings.Contains(string(doc), "| `"+string(r.Family)+"` |") {
			t.Errorf("docs/zendesk.md has no row for family %q", r.Family)
		}
	}
}
