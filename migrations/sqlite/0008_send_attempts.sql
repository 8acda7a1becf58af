-- When a send job first began calling its provider (Unix ms), written before the call and
-- kept until the job ends. A later attempt of a job that has it may follow one that reached
-- the provider without its outcome being recorded (kill -9 mid-request): the connector is
-- asked whether the message is already there before it is sent again.
ALTER TABLE jobs ADD COLUMN send_started_at INTEGER;
