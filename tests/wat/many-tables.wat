;; Eleven tables: one more than Limits.tables allows by default.
(component
  (core module $m
    (table 1 funcref) (table 1 funcref) (table 1 funcref) (table 1 funcref)
    (table 1 funcref) (table 1 funcref) (table 1 funcref) (table 1 funcref)
    (table 1 funcref) (table 1 funcref) (table 1 funcref)
    (func (export "answer") (result i32) i32.const 42))
  (core instance $i (instantiate $m))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
