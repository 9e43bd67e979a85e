-- Utility functions.
SELECT lvector_dims('[1,2,3]'), lvector_norm('[3,4]'), lvector_norm('[0,0]');
SELECT l2_normalize('[3,4]'), l2_normalize('[0,0]'), l2_normalize('[-2]');
SELECT lvector_norm(l2_normalize('[1,2,3,4,5]')) BETWEEN 0.9999999 AND 1.0000001 AS unit;
SELECT subvector('[1,2,3,4,5]', 2, 3), subvector('[1,2,3,4,5]', 1, 5), subvector('[1,2,3,4,5]', 4, 10),
       subvector('[1,2,3,4,5]', -1, 3), subvector('[1,2,3,4,5]', 5, 1);
SELECT libravdb_simd_level() IN ('scalar', 'avx2', 'avx512') AS known_level;
