-- `q` across the split of a long line: a part after the first carries the last 255 characters
-- of the part before it (`overlap`; a `q` has at most 256), and the trigram index holds
-- `overlap || text`, so a match that starts in one part and ends in the next is found in the
-- next. Parts stored before this get their overlap here.
SET LOCAL lock_timeout = '5s';

ALTER TABLE log_lines ADD COLUMN overlap text NOT NULL DEFAULT '';

UPDATE log_lines AS later
   SET overlap = right(earlier.text, 255)
  FROM log_lines AS earlier
 WHERE later.part > 1
   AND earlier.stream_id = later.stream_id
   AND earlier.cursor = later.cursor  -- a stream never gives a cursor twice
   AND earlier.part = later.part - 1;

CREATE INDEX log_lines_stream_search_trgm
    ON log_lines USING gin (stream_id, (overlap || text) gin_trgm_ops);
DROP INDEX log_lines_stream_text_trgm;
