;; Hostile, assembled with wat2wasm --no-check: moat_authorize writes the
;; global after its module's own (none), where the meter puts its deadline,
;; then loops. Refused at load: global index 1 is out of range.
(module (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32)
    (global.set 1 (i64.const -1))
    (loop $l (br $l))
    (i32.const 1)))
