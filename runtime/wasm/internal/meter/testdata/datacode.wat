;; Memory and data but no code, global or export section: the new global
;; and export sections go between memory and data.
(module
  (memory 1)
  (data (i32.const 0) "moat"))
