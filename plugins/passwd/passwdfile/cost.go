package passwdfile

import (
	"strconv"
	"time"
)

// Costliest times one verification for each distinct cost (format and
// parameters) among the file's users and returns the user whose line took
// longest, with that time. It is for tools and load-time warnings (a line
// that cannot be checked within the plugin's timeout refuses its user), and
// it costs one hash per distinct cost: call it once per load, not per
// CONNECT. An empty file returns "" and 0.
func (f *File) Costliest() (user string, took time.Duration) {
	seen := make(map[string]bool)
	for _, l := range f.lines {
		if l.user == "" {
			continue
		}
		e := f.users[l.user]
		k := e.costKey()
		if seen[k] {
			continue
		}
		seen[k] = true
		start := time.Now()
		e.verify(f.opts.Hasher, []byte("moat: cost probe, never a password"))
		if d := time.Since(start); d > took {
			user, took = l.user, d
		}
	}
	return user, took
}

// Describe names the format and cost of username's line, such as
// "$7$ 210000 iterations", for messages; "" for an unknown user.
func (f *File) Describe(username string) string {
	e, ok := f.users[username]
	if !ok {
		return ""
	}
	switch e.kind {
	case kindSHA512:
		return "$6$ (single SHA-512)"
	case kindMosqPBKDF2:
		return "$7$ PBKDF2-SHA512, " + itoa(e.iter) + " iterations"
	case kindGoAuthPBKDF2:
		return "PBKDF2 (mosquitto-go-auth), " + itoa(e.iter) + " iterations"
	case kindArgon2id:
		return "argon2id m=" + itoa(int(e.mem)) + " t=" + itoa(e.iter) + " p=" + itoa(int(e.par))
	case kindBcrypt:
		return "bcrypt cost " + itoa(e.iter)
	case kindSCRAM:
		return "SCRAM, " + itoa(e.iter) + " iterations"
	}
	return "unknown format"
}

func itoa(n int) string { return strconv.Itoa(n) }
