;; Hostile, assembled with wat2wasm --no-check: exports the meter's
;; deadline (global 1) and yield table (table 0) under names of its own.
;; Refused at load: the indices are out of range.
(module (memory (export "memory") 1)
  (export "d" (global 1))
  (export "t" (table 0))
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
