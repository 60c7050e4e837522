package accounts

// Diff compares two loads of the accounts file: the names of the accounts
// only in next (added), in both but different in any field, secrets
// included (changed), and only in prev (removed), each in its file's
// order. A nil File has no accounts.
func Diff(prev, next *File) (added, changed, removed []string) {
	old := map[string]string{}
	for _, a := range accountsOf(prev) {
		old[a.Name] = a.Fingerprint()
	}
	seen := map[string]bool{}
	for _, a := range accountsOf(next) {
		seen[a.Name] = true
		fp, ok := old[a.Name]
		switch {
		case !ok:
			added = append(added, a.Name)
		case fp != a.Fingerprint():
			changed = append(changed, a.Name)
		}
	}
	for _, a := range accountsOf(prev) {
		if !seen[a.Name] {
			removed = append(removed, a.Name)
		}
	}
	return added, changed, removed
}

func accountsOf(f *File) []Account {
	if f == nil {
		return nil
	}
	return f.Accounts
}
