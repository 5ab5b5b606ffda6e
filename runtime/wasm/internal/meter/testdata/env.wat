;; The "env" module that imports.wat imports from. It is not instrumented.
(module
  (global (export "base") i32 (i32.const 100))
  (global (export "counter") (mut i64) (i64.const 1000))
  (memory (export "mem") 1)
  (table (export "tab") 1 funcref)
  (func (export "f") (param i32) (result i32)
    (i32.mul (local.get 0) (i32.const 2))))
