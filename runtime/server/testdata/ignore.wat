;; ignore: an authz module with no opinion; the chain goes on. The soak
;; test rewrites it (with a custom section) to change a module in every
;; version without changing the policy.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 3)))
