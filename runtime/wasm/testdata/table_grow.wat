;; Hostile: moat_authorize grows its table by 2^27 elements (1 GiB in
;; wazero, outside linear memory), then by 0xfffffffe (32 GiB asked).
;; The meter caps the table's maximum to the plugin's table budget, so both
;; grows return -1 and the decision allows; a grow that succeeds ignores.
(module (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32)
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 0x8000000)) (i32.const -1))
      (then (return (i32.const 3))))
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 0xfffffffe)) (i32.const -1))
      (then (return (i32.const 3))))
    (i32.const 1)))
