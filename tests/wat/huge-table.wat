;; Asks for a function table of 100 million elements up front.
(component
  (core module $m
    (table 100000000 funcref)
    (func (export "answer") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
