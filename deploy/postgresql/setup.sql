-- Role and database for Parley: sudo -u postgres psql -f setup.sql
-- Change the password, and put the same one in PARLEY_DATABASE_URL.
CREATE ROLE parley LOGIN PASSWORD 'CHANGE-ME';
CREATE DATABASE parley OWNER parley ENCODING 'UTF8' TEMPLATE template0;
