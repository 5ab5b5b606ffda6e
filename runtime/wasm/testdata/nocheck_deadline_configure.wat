;; Hostile, assembled with wat2wasm --no-check: moat_configure has one
;; global of its own and writes the next one, the meter's epoch, back to 0,
;; then loops. Refused at load: global index 2 is out of range.
(module (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
  (func (export "moat_configure") (param i32) (result i32)
    (global.set 2 (i64.const -1))
    (loop $l (global.set 1 (i64.const 0)) (br $l))
    (i32.const 0)))
