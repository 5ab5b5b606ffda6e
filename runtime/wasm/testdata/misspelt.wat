;; misspelt: a reactor that also exports moat_authorise (sic). Loads, with a
;; warning naming the export.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "_initialize"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 1))
  (func (export "moat_authorise") (param i32) (result i32) (i32.const 1))
)
