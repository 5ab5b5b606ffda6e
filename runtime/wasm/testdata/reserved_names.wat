;; reserved_names: exports names in the host's reserved "moat." namespace
;; that the instrumentation does not add itself (so they do not collide
;; with its own). Refused at load.
(module
  (memory (export "memory") 1)
  (global (export "moat.limit") (mut i64) (i64.const -1))
  (func (export "moat_abi_v1"))
  (func (export "moat.policy"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
)
