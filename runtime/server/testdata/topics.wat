;; topics: allows a request whose topic is written, as a JSON string, in the
;; plugin's config: with [plugin.config] topics = ["a/b", "c"] (the module
;; receives {"topics":["a/b","c"]}) it allows exactly "a/b" and "c", and
;; ignores everything else. A substring search for "<topic>" (quotes
;; included), not a JSON parser: enough for the tests, which change the
;; list to change the policy without a Go guest's load time.
(module
  (memory (export "memory") 2)
  (global $cfglen (mut i32) (i32.const 0))
  (func (export "moat_abi_v1"))
  ;; Requests and the config are written at 1024; the config is copied to
  ;; 65536 by moat_configure.
  (func (export "moat_buffer") (param $size i32) (result i32)
    (if (i32.gt_u (local.get $size) (i32.const 64512)) (then unreachable))
    (i32.const 1024))
  (func $copy (param $dst i32) (param $src i32) (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (i32.store8 (local.get $dst) (i32.load8_u (local.get $src)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))
  (func (export "moat_configure") (param $n i32) (result i32)
    (call $copy (i32.const 65536) (i32.const 1024) (local.get $n))
    (global.set $cfglen (local.get $n))
    (i32.const 0))
  (func (export "moat_authorize") (param $n i32) (result i32)
    (local $p i32) (local $l i32) (local $i i32) (local $j i32) (local $ok i32)
    ;; field 5 (topic): descriptor at 16 + 5*8 = 56 from the buffer
    (local.set $p (i32.add (i32.const 1024) (i32.load (i32.const 1080))))
    (local.set $l (i32.load (i32.const 1084)))
    (block $done
      (loop $scan
        ;; a match needs l+2 bytes from i
        (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.add (local.get $l) (i32.const 2))) (global.get $cfglen)))
        (if (i32.and
              (i32.eq (i32.load8_u (i32.add (i32.const 65536) (local.get $i))) (i32.const 34))
              (i32.eq (i32.load8_u (i32.add (i32.const 65537) (i32.add (local.get $i) (local.get $l)))) (i32.const 34)))
          (then
            (local.set $ok (i32.const 1))
            (local.set $j (i32.const 0))
            (block $differ
              (loop $cmp
                (br_if $differ (i32.ge_u (local.get $j) (local.get $l)))
                (if (i32.ne (i32.load8_u (i32.add (i32.const 65537) (i32.add (local.get $i) (local.get $j))))
                            (i32.load8_u (i32.add (local.get $p) (local.get $j))))
                  (then (local.set $ok (i32.const 0)) (br $differ)))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $cmp)))
            (if (local.get $ok) (then (return (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const 3)))
