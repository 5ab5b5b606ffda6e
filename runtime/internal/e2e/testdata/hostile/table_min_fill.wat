;; table_min_fill: declares a table of 0x2000000 entries (256 MiB of host
;; memory) and fills it in its start function, so that the memory is
;; touched at load. Under a 64KiB memory_limit the module must be refused
;; at load, before that memory is taken.
(module
  (table $t 0x2000000 funcref)
  (memory (export "memory") 1)
  (func $fill (table.fill $t (i32.const 0) (ref.null func) (i32.const 0x2000000)))
  (start $fill)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 3))
)
