;; command: a WASI command (exports _start, no _initialize), as
;; `GOOS=wasip1 go build` makes without -buildmode=c-shared. Its exports may
;; re-run constructors at every call. Refused at load. It also exports a
;; misspelt moat_authorise, which alone would only be logged.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "_start"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
  (func (export "moat_authorise") (param i32) (result i32) (i32.const 1))
)
