;; No sections at all.
(module)
