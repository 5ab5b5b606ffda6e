package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
)

const passwdDoc = `Passwd creates and updates password files for the passwd and scram plugins,
like mosquitto_passwd, whose files it reads and writes: every format of
plugins/passwd (Mosquitto $6$ and $7$, argon2id, bcrypt, mosquitto-go-auth
PBKDF2, SCRAM) may be mixed in one file, and lines it does not change, and
comments, are kept as they are.

  moat passwd [-c] file user       add or update user, asking for the password
  moat passwd -D file user         delete user
  moat passwd [-c] -b file user pw add or update user, password on the command line
  moat passwd -U file              hash every plaintext "user:password" line;
                                   lines that already hold a hash are kept

The password is read from the terminal without echo, twice; when stdin is
not a terminal, one line is read from it (for scripts: printf '%s\n' "$pw" |
moat passwd file user). -b puts the password on the command line, where
other users of the machine can see it in the process list: prefer stdin.

New hashes are Mosquitto 2.x's $7$ (PBKDF2-SHA512) at 20000 iterations
unless -H or -I say otherwise, so that Mosquitto reads every line (a
rollback keeps every user) and moat's passwd plugin checks one within its
default 100 ms timeout with room to spare: one check takes about 20 ms
(10 to 30 ms measured on a loaded 2-core machine; the plugin hashes with the
host's native pbkdf2 function). Other formats, one flag away:
  sha512-pbkdf2  the default: Mosquitto 2.x $7$ (mosquitto_passwd writes 101
                 iterations, which a GPU tries in microseconds)
  argon2id       m=19 MiB, t=2, p=1 (OWASP); mosquitto-go-auth reads it,
                 Mosquitto 2.0 does not
  sha512         Mosquitto 1.x $6$, a single SHA-512: only for old brokers
  bcrypt         cost 10
  pbkdf2-sha256  mosquitto-go-auth, 600000 iterations
  pbkdf2-sha512  mosquitto-go-auth, 210000 iterations
  scram-sha-256  SCRAM credentials for the scram plugin (MQTT 5 enhanced
  scram-sha-512  authentication), 4096 iterations; also good for passwords

Every CONNECT costs one check at the line's cost: more iterations slow an
attacker with a stolen file and every login alike. A line the plugin cannot
check within its timeout refuses its user; 'moat check' warns of such a
line. Raise the plugin's timeout in moat.toml to go higher.

The file is replaced atomically (a temporary file in the same directory,
fsync, rename, fsync of the directory) and keeps its mode and owner; a new
file gets mode 0600. The password is never echoed, printed or logged.
`

// Defaults of `moat passwd`. Mosquitto's $7$ so that a rollback to
// Mosquitto keeps every user; 20000 iterations so that the passwd plugin
// checks a line well within its default 100 ms timeout: about 2.5 ms per
// 1000 iterations of PBKDF2-SHA512 on a loaded 2-core machine (Go's
// crypto/pbkdf2, which the plugin's host function runs), so 20 to 50 ms.
// passwdfile's own default, 210000 (OWASP), takes 250 ms there and was
// refused by the plugin at its default timeout.
const (
	passwdDefaultFormat     = passwdfile.FormatSHA512PBKDF2
	passwdDefaultIterations = 20_000
)

// runPasswd is `moat passwd`.
func runPasswd(args []string, stdin io.Reader, _, stderr io.Writer) int {
	fs := newFlags("passwd", "moat passwd [-c | -D] [-H format] [-I iterations] [-b] passwordfile username [password]\n       moat passwd [-H format] [-I iterations] -U passwordfile", passwdDoc, stderr)
	create := fs.Bool("c", false, "create the file, replacing it if it exists")
	del := fs.Bool("D", false, "delete the user")
	batch := fs.Bool("b", false, "batch mode: the password is the last argument")
	upgrade := fs.Bool("U", false, "upgrade a file of plaintext user:password lines to hashes")
	format := fs.String("H", passwdDefaultFormat, "the hash `format`: "+strings.Join(passwdfile.Formats(), ", "))
	iterations := fs.Int("I", 0, "the cost: PBKDF2 or SCRAM `iterations`, bcrypt cost, or argon2id t (default: 20000 for sha512-pbkdf2, else the format's)")
	goAuthSalt := fs.String("goauth-salt", passwdfile.SaltBase64, "the `encoding` of the file's mosquitto-go-auth PBKDF2 salts: base64 or utf-8")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "moat passwd: "+format+"\nRun 'moat help passwd' for usage.\n", a...)
		return exitUsage
	}
	want := 2
	switch {
	case *create && *del:
		return usageErr("-c and -D cannot be combined")
	case *upgrade && (*create || *del || *batch):
		return usageErr("-U cannot be combined with -c, -D or -b")
	case *del && *batch:
		return usageErr("-D and -b cannot be combined")
	case *del && (*iterations != 0 || *format != passwdDefaultFormat):
		return usageErr("-D takes no -H or -I")
	case *upgrade:
		want = 1
	case *batch:
		want = 3
	}
	if fs.NArg() != want {
		return usageErr("want %d arguments, got %d", want, fs.NArg())
	}
	hopts := passwdfile.HashOptions{Iterations: *iterations}
	if hopts.Iterations == 0 && *format == passwdfile.FormatSHA512PBKDF2 {
		hopts.Iterations = passwdDefaultIterations
	}
	// Check -H and -I now, not after asking for the password twice.
	if err := passwdfile.CheckHashOptions(*format, hopts); err != nil {
		return usageErr("%s", trimPasswd(err))
	}
	popts := passwdfile.Options{GoAuthSaltEncoding: *goAuthSalt}

	p := &passwdRun{path: fs.Arg(0), create: *create, stderr: stderr}
	if err := p.open(); err != nil {
		return p.fail(err)
	}

	var f *passwdfile.File
	switch {
	case *upgrade:
		var n int
		var err error
		f, n, err = passwdfile.Upgrade(bytes.NewReader(p.data), p.path, popts, func(pw []byte) (string, error) {
			h, err := passwdfile.HashWith(pw, *format, hopts)
			if err != nil {
				return "", errors.New(trimPasswd(err))
			}
			return h, nil
		})
		if err != nil {
			return p.fail(err)
		}
		if n == 0 {
			return exitOK // nothing to hash: leave the file untouched
		}
	default:
		var err error
		if f, err = passwdfile.ParseWith(bytes.NewReader(p.data), p.path, popts); err != nil {
			return p.fail(err)
		}
		user := fs.Arg(1)
		if err := passwdfile.CheckUsername(user); err != nil {
			return p.fail(err)
		}
		if *del {
			if !f.Delete(user) {
				fmt.Fprintf(stderr, "moat passwd: user %q not found in %s\n", user, p.path)
				return exitFail
			}
			break
		}
		var pw []byte
		if *batch {
			pw = []byte(fs.Arg(2))
		} else if pw, err = readPassword(stdin, stderr); err != nil {
			return p.fail(err)
		}
		if err := checkPassword(pw); err != nil {
			return p.fail(err)
		}
		h, err := passwdfile.HashWith(pw, *format, hopts)
		if err != nil {
			return p.fail(err)
		}
		if err := f.Set(user, h); err != nil {
			return p.fail(err)
		}
	}
	if err := p.write(f); err != nil {
		return p.fail(err)
	}
	return exitOK
}

// trimPasswd drops the "passwd: " prefix of passwdfile's errors, which
// "moat passwd: " replaces.
func trimPasswd(err error) string { return strings.TrimPrefix(err.Error(), "passwd: ") }

// passwdRun is one invocation's file: where it is and what it held.
type passwdRun struct {
	path   string // with symlinks resolved, so the link is kept
	create bool
	stderr io.Writer

	data   []byte      // the current content; empty for -c
	exists bool        // the file existed
	info   fs.FileInfo // of the existing file
}

func (p *passwdRun) fail(err error) int {
	fmt.Fprintf(p.stderr, "moat passwd: %s\n", trimPasswd(err))
	return exitFail
}

// open resolves the path and reads the file, unless -c replaces it.
func (p *passwdRun) open() error {
	real, err := filepath.EvalSymlinks(p.path)
	switch {
	case err == nil:
		p.path = real // write through a symlink, not over it
	case errors.Is(err, fs.ErrNotExist) && p.create:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist (use -c to create it)", p.path)
	default:
		return err
	}
	fi, err := os.Stat(p.path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p.path)
	}
	p.exists, p.info = true, fi
	if p.create {
		return nil // replaced, as mosquitto_passwd -c does
	}
	p.data, err = os.ReadFile(p.path)
	return err
}

// write replaces the file atomically: a temporary file in the same
// directory (so that rename does not cross file systems) with the old mode
// and owner, written and fsynced, renamed over the file, then the directory
// fsynced so that the rename itself survives a crash.
func (p *passwdRun) write(f *passwdfile.File) (err error) {
	dir, base := filepath.Split(p.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	mode := fs.FileMode(0o600)
	if p.exists {
		mode = p.info.Mode().Perm()
		if uid, gid, ok := fileOwner(p.info); ok && (uid != os.Geteuid() || gid != os.Getegid()) {
			if err := tmp.Chown(uid, gid); err != nil {
				fmt.Fprintf(p.stderr, "moat passwd: warning: %s will belong to you, not to uid %d gid %d: %v\n", p.path, uid, gid, err)
			}
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := f.Write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p.path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		if err := d.Sync(); err != nil {
			fmt.Fprintf(p.stderr, "moat passwd: warning: %s written, but syncing %s failed: %v\n", p.path, dir, err)
		}
		d.Close()
	}
	return nil
}

// maxPassword is MQTT's limit on the password field.
const maxPassword = 65535

// readPassword reads the password from stdin: from a terminal without echo,
// twice, comparing; otherwise one line.
func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		pw, err := readNoEcho(f, func() { fmt.Fprint(stderr, "Password: ") })
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		again, err := readNoEcho(f, func() { fmt.Fprint(stderr, "Reenter password: ") })
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("passwords do not match")
		}
		return pw, nil
	}
	pw, err := readLine(stdin)
	if err != nil {
		return nil, err
	}
	return pw, nil
}

// readLine reads up to a newline, a byte at a time so as not to read past
// it, and drops the "\n" or "\r\n". EOF after some bytes ends the line.
func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(line) > maxPassword {
				return nil, fmt.Errorf("password longer than %d bytes", maxPassword)
			}
			line = append(line, b[0])
		}
		if err == io.EOF {
			if len(line) == 0 {
				return nil, errors.New("no password on stdin")
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
	}
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

func checkPassword(pw []byte) error {
	switch {
	case len(pw) == 0:
		return errors.New("empty password")
	case len(pw) > maxPassword:
		return fmt.Errorf("password longer than %d bytes", maxPassword)
	case bytes.ContainsAny(pw, "\r\n"):
		return errors.New("password contains a line break")
	}
	return nil
}
