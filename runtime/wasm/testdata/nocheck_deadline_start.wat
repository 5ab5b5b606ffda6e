;; Hostile, assembled with wat2wasm --no-check: the start function resets
;; the meter's deadline (global 1) and yield countdown (global 2), then
;; loops. Refused at load: the indices are out of range.
(module (memory (export "memory") 1)
  (func $start
    (global.set 1 (i64.const -1))
    (global.set 2 (i32.const 0x7fffffff))
    (loop $l (br $l)))
  (start $start)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
