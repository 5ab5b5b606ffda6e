;; reserved_export: exports a function and a global under names in the
;; host's "moat." namespace that the host does not add today
;; ("moat.yield", "moat.countdown"), so that a later host that adds them
;; would meet the module's instead. The module must be refused at load
;; (sdk/ABI.md §1).
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "moat.yield") (loop $forever (br $forever)))
  (global (export "moat.countdown") (mut i32) (i32.const 0))
  (func (export "moat_authorize") (param i32) (result i32) (i32.const 3))
)
