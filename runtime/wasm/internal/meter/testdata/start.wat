;; A start section: instrumenting must remove it and export $init as
;; moat.start instead.
(module
  (global $started (mut i32) (i32.const 0))
  (func $init
    (global.set $started (i32.add (global.get $started) (i32.const 1))))
  (start $init)
  (func (export "started") (result i32) (global.get $started)))
