package names

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for name, ok := range map[string]bool{
		"orders": true, "a.b_c-D9": true, "..a": true, strings.Repeat("x", MaxLen): true,
		"": false, ".": false, "..": false, "../x": false, "a/b": false, "a b": false, "é": false,
		strings.Repeat("x", MaxLen+1): false,
	} {
		err := Check("group", name)
		if (err == nil) != ok {
			t.Errorf("Check(%.20q): %v, want ok %v", name, err, ok)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "group name ") {
			t.Errorf("Check(%.20q): %q does not begin by naming the kind", name, err)
		}
	}
}
