;; Hostile: four tables of 2^25 elements each (1 GiB together in wazero,
;; allocated at instantiation and counted live by Go's GC, outside linear
;; memory), never touched. Refused at load: over the table budget.
(module (memory (export "memory") 1)
  (table 0x2000000 funcref)
  (table 0x2000000 funcref)
  (table 0x2000000 funcref)
  (table 0x2000000 funcref)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1)))
