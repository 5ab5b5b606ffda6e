;; allow: the smallest authz policy, allowing every request. The reload
;; tests and benchmarks swap it with deny.wasm, appending a custom section
;; when they need another digest with the same behaviour.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
