-- Issue 24: the program store counts and guards a program's tasks by program id.
CREATE INDEX tasks_of_program ON tasks (program_id);
