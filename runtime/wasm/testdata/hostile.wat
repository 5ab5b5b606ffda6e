;; hostile: misbehaves on request. moat_authorize dispatches on the first
;; byte of the topic, moat_authenticate on the first byte of the username;
;; any other byte allows, so the same module also serves normal calls.
(module
  (import "moat" "log" (func $log (param i32 i32 i32)))
  (import "moat" "set_message" (func $set_message (param i32 i32) (result i32)))
  (import "moat" "add_attribute" (func $add_attribute (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  ;; Small buffers are fine; a larger one is a wild pointer.
  (func (export "moat_buffer") (param $size i32) (result i32)
    (if (result i32) (i32.le_u (local.get $size) (i32.const 4096))
      (then (i32.const 1024))
      (else (i32.const 0xffff0000))))
  (func $deep (param i32) (result i32)
    (i32.add (call $deep (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $first (param $id i32) (result i32)
    (i32.load8_u (i32.add (i32.const 1024) (i32.load (i32.add (i32.const 1040) (i32.shl (local.get $id) (i32.const 3)))))))
  (func (export "moat_authorize") (param $n i32) (result i32)
    (local $c i32)
    (local.set $c (call $first (i32.const 5)))
    (if (i32.eq (local.get $c) (i32.const 0x6c)) (then (loop $spin (br $spin)))) ;; 'l' infinite loop
    (if (i32.eq (local.get $c) (i32.const 0x72)) (then (return (call $deep (i32.const 0))))) ;; 'r' recursion
    (if (i32.eq (local.get $c) (i32.const 0x75)) (then unreachable)) ;; 'u'
    (if (i32.eq (local.get $c) (i32.const 0x67)) ;; 'g' one big grow, handled
      (then
        (if (i32.lt_s (memory.grow (i32.const 2048)) (i32.const 0))
          (then (return (i32.const 0x8702))))
        (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x47)) ;; 'G' grow until refused, then trap
      (then
        (loop $grow
          (br_if $grow (i32.ge_s (memory.grow (i32.const 16)) (i32.const 0))))
        unreachable))
    (if (i32.eq (local.get $c) (i32.const 0x6d)) ;; 'm' wild pointer
      (then (return (call $set_message (i32.const 0xfffffff0) (i32.const 100)))))
    (if (i32.eq (local.get $c) (i32.const 0x70)) ;; 'p' wild length
      (then (return (call $set_message (i32.const 0) (i32.const 0xffffffff)))))
    (if (i32.eq (local.get $c) (i32.const 0x77)) ;; 'w' wild log
      (then (call $log (i32.const 1) (i32.const 0x7fff0000) (i32.const 10)) (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 0x30)) (then (return (i32.const 0))))          ;; '0' verdict 0
    (if (i32.eq (local.get $c) (i32.const 0x39)) (then (return (i32.const 9))))          ;; '9' verdict 9
    (if (i32.eq (local.get $c) (i32.const 0x78)) (then (return (i32.const 0x00800001)))) ;; 'x' reserved bit
    (if (i32.eq (local.get $c) (i32.const 0x63)) (then (return (i32.const 4))))          ;; 'c' continue
    (if (i32.eq (local.get $c) (i32.const 0x73)) (then (return (i32.const 0x10001))))    ;; 's' superuser
    (if (i32.eq (local.get $c) (i32.const 0x6b)) (then (return (i32.const 0x4202))))     ;; 'k' deny reason 0x42
    (if (i32.eq (local.get $c) (i32.const 0x65)) (then (call $proc_exit (i32.const 3)))) ;; 'e' proc_exit
    (if (i32.eq (local.get $c) (i32.const 0x6f)) (then (return (i32.load (i32.const 0xfffffff0))))) ;; 'o' OOB load
    (i32.const 1))
  (func (export "moat_authenticate") (param $n i32) (result i32)
    (local $c i32)
    (local.set $c (call $first (i32.const 1)))
    (if (i32.eq (local.get $c) (i32.const 0x61)) ;; 'a' wild attribute key
      (then (return (call $add_attribute (i32.const 0xfffffff0) (i32.const 4) (i32.const 0) (i32.const 4)))))
    (if (i32.eq (local.get $c) (i32.const 0x76)) ;; 'v' wild attribute value length
      (then (return (call $add_attribute (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0x20000)))))
    (if (i32.eq (local.get $c) (i32.const 0x6d)) ;; 'm' message one past the end
      (then (return (call $set_message (i32.const 0x10000) (i32.const 1)))))
    (if (i32.eq (local.get $c) (i32.const 0x63)) (then (return (i32.const 4)))) ;; 'c' continue without auth_method
    (i32.const 1))
)
