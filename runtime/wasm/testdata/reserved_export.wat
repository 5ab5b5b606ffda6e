;; reserved_export: exports names of the host's reserved "moat." prefix, one
;; of them the name of the meter's deadline global. Refused at load.
(module
  (memory (export "memory") 1)
  (global (export "moat.deadline") (mut i64) (i64.const -1))
  (func (export "moat_abi_v1"))
  (func (export "moat.start"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
)
