// Command files is a test module that reads granted files with
// sdk/go/files: its authz handler denies with the content of the file
// named by the topic as message, so tests see what the module read.
package main

import (
	"errors"
	"io/fs"

	moat "github.com/moat-mqtt/moat/sdk/go"
	"github.com/moat-mqtt/moat/sdk/go/files"
)

func init() {
	moat.HandleAuthz(func(r *moat.AuthzRequest) moat.Result {
		b, err := files.ReadFile(r.Topic)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return moat.Deny(moat.ReasonUnspecified, "not exist: "+err.Error())
		case err != nil:
			return moat.Deny(moat.ReasonUnspecified, "error: "+err.Error())
		}
		return moat.Deny(moat.ReasonNotAuthorized, string(b))
	})
}

func main() {}
