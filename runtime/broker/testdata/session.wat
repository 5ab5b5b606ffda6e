;; session: the authorization policy of the session tests (session_test.go).
;; authz only:
;;   - any action on a topic under "secret/": deny;
;;   - any action on a topic under "tenant/": allow only for a client with
;;     attributes (field 7 present), which only authentication can give;
;;   - anything else: allow.
;; The request is at 1024 (moat_buffer); field i's descriptor at 1040 + 8*i.
(module
  (memory (export "memory") 1)
  (func (export "moat_abi_v1"))
  (func (export "moat_buffer") (param i32) (result i32) (i32.const 1024))
  ;; $prefix7 reports whether the topic starts with the 7 bytes whose first
  ;; four are $a and last four (bytes 3-6) are $b.
  (func $prefix7 (param $a i32) (param $b i32) (result i32)
    (local $off i32)
    (if (i32.lt_u (i32.load (i32.const 1084)) (i32.const 7)) (then (return (i32.const 0))))
    (local.set $off (i32.add (i32.const 1024) (i32.load (i32.const 1080))))
    (i32.and
      (i32.eq (i32.load (local.get $off)) (local.get $a))
      (i32.eq (i32.load (i32.add (local.get $off) (i32.const 3))) (local.get $b))))
  (func (export "moat_authorize") (param $len i32) (result i32)
    ;; "secret/": "secr" and "ret/"
    (if (call $prefix7 (i32.const 0x72636573) (i32.const 0x2f746572))
      (then (return (i32.const 2))))
    ;; "tenant/": "tena" and "ant/"; attributes descriptor at 1040 + 56
    (if (call $prefix7 (i32.const 0x616e6574) (i32.const 0x2f746e61))
      (then
        (if (i32.eqz (i32.load (i32.const 1096))) (then (return (i32.const 2))))))
    (i32.const 1))
)
