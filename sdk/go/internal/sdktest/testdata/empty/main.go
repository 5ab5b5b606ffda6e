// Command empty is the SDK's dispatch around handlers that allow at once:
// BenchmarkGoCost measures with it what the SDK adds to a decision
// (decoding the request, packing the result, the panic guard) over the
// bare module's floor.
package main

import moat "github.com/moat-mqtt/moat/sdk/go"

func init() {
	moat.HandleAuthn(func(*moat.AuthnRequest) moat.AuthnResult { return moat.AuthnResult{Result: moat.Allow()} })
	moat.HandleAuthz(func(*moat.AuthzRequest) moat.Result { return moat.Allow() })
}

func main() {}
