;; A tag section (exception handling) and no global section: the new
;; global section must follow the tag section.
(module
  (tag $e (param i32))
  (func (export "boom") (param i32)
    (if (local.get 0)
      (then (throw $e (i32.const 1))))))
