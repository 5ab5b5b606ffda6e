;; reserved_export: exports a function under a name in the host's moat.
;; namespace, "moat.start", the name the meter gives a module's former
;; start function, hoping the host will call it. The module must be
;; refused at load (sdk/ABI.md §1).
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat.start") (loop $forever (br $forever)))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 3))
)
