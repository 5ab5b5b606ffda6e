;; table_grow_max: for an evil client, grows a table by 0xfffffffe
;; entries, 32 GiB at 8 bytes an entry: more than the machine has. It
;; allows when the growth succeeded and traps when it was refused.
(module
  (table $t 0 funcref)
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func $evil (result i32)
    (i32.and
      (i32.ge_u (i32.load (i32.const 1052)) (i32.const 4))
      (i32.eq (i32.load (i32.add (i32.const 1024) (i32.load (i32.const 1048))))
              (i32.const 0x6c697665))))
  (func (export "moat_authorize") (param i32) (result i32)
    (if (i32.eqz (call $evil)) (then (return (i32.const 3))))
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 0xfffffffe)) (i32.const -1))
      (then unreachable))
    (i32.const 1))
)
