;; A component whose core module's start function never returns: it must not hang
;; the host at load (fuel and the deadline hold during instantiation too).
(component
  (core module $m
    (func $forever (loop $l (br $l)))
    (start $forever)
    (func (export "answer") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
