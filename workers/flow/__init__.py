"""Flow steps: what happens to events and messages (processing, admission, sending, feedback, approvals,
callbacks to origins). Each step receives the narrow collaborators it uses; none reads the environment,
builds clients or enqueues jobs other than through the enqueuer it is given."""
