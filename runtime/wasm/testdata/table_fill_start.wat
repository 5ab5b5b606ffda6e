;; Hostile: the start function grows a table declared with a 1 GiB maximum
;; by 2^27 elements and fills it. With the table capped to the plugin's
;; budget the grow returns -1 and the fill, past the table's end, traps:
;; the load fails without allocating.
(module (memory (export "memory") 1)
  (table $t 0 0x8000000 funcref)
  (func $start
    (drop (table.grow $t (ref.null func) (i32.const 0x8000000)))
    (table.fill $t (i32.const 0) (ref.null func) (i32.const 0x8000000)))
  (start $start)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
